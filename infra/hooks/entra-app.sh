#!/usr/bin/env sh
# azd preprovision hook: Slipway's Microsoft Entra app registration, made once per environment.
# It defines the app roles (infra/app-roles.json), exposes api://<appId> for pipelines' tokens,
# and requires assignment, so only people and apps given a role get a token for Slipway.
# Set AUTH_CLIENT_ID yourself (azd env set AUTH_CLIENT_ID <appId>) to use an existing registration.
set -eu
if [ -n "${AUTH_CLIENT_ID:-}" ]; then
  echo "Using the app registration ${AUTH_CLIENT_ID}"
  exit 0
fi
here=$(dirname "$0")
name="slipway-${AZURE_ENV_NAME}"
app_id=$(az ad app create --display-name "$name" --sign-in-audience AzureADMyOrg \
  --app-roles "@${here}/../app-roles.json" --enable-id-token-issuance true --query appId -o tsv)
az ad app update --id "$app_id" --identifier-uris "api://${app_id}"
az ad sp create --id "$app_id" >/dev/null 2>&1 || true
az ad sp update --id "$app_id" --set appRoleAssignmentRequired=true
azd env set AUTH_CLIENT_ID "$app_id"
echo "Created the app registration ${name} (${app_id}); assign people and pipelines its app roles."
