#!/usr/bin/env sh
# azd postprovision hook: finish what only exists after provisioning.
# - the sign-in redirect URI of the deployed app;
# - the federated credential that lets App Service authentication use its own managed identity
#   instead of a client secret (issuer: the tenant, subject: the identity's principal id).
set -eu
tenant=$(az account show --query tenantId -o tsv)
az ad app update --id "$AUTH_CLIENT_ID" --web-redirect-uris "${SLIPWAY_URL}/.auth/login/aad/callback"
if ! az ad app federated-credential show --id "$AUTH_CLIENT_ID" --federated-credential-id slipway-easy-auth \
    >/dev/null 2>&1; then
  az ad app federated-credential create --id "$AUTH_CLIENT_ID" --parameters "{
    \"name\": \"slipway-easy-auth\",
    \"issuer\": \"https://login.microsoftonline.com/${tenant}/v2.0\",
    \"subject\": \"${AUTH_IDENTITY_PRINCIPAL_ID}\",
    \"audiences\": [\"api://AzureADTokenExchange\"]
  }" >/dev/null
fi
echo "Sign in at ${SLIPWAY_URL}/ (App Service authentication with Microsoft Entra ID)."
