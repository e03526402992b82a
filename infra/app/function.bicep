// The function app on Flex Consumption (Python 3.11). App Service authentication is configured in
// auth.bicep; every route is anonymous to the Functions host and Slipway checks callers itself.
// Every connection is identity-based:
// storage through the AzureWebJobsStorage__* settings, ARM and Azure Monitor through the same
// user-assigned identity. The app settings here are the ones shared/config.py reads.
param name string
param location string
param tags object
param storageAccountName string
param deploymentContainerName string
param identityId string
param identityClientId string

@description('The identity App Service authentication uses as its federated credential (assigned to this app only).')
param authIdentityId string
param authIdentityClientId string
param appInsightsConnectionString string
param emailEndpoint string = ''
param emailSender string = ''

@description('Comma-separated users or groups granted the admin role.')
param admins string = ''

@description('Comma-separated users or groups granted the release manager role.')
param releaseManagers string = ''

@description('Group names mapped to Entra group object ids (name=objectId, comma-separated), for approvers and role grants named by group.')
param groupIds string = ''

@description('Who a group of approvers or assignees is mailed as: JSON {"group": ["a@contoso.com", ...]}; a group without an entry gets no mail.')
param mailGroups string = ''

@description('App settings a REST gate may send as header values: NAME@host or NAME, comma-separated.')
param gateHeaderSettings string = ''

@description('Most instances Flex Consumption may run.')
param maximumInstanceCount int = 40

@description('Memory of one instance in MB.')
param instanceMemoryMB int = 2048

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: storageAccountName
}

// The app's own resource id, built from its parts (a site cannot reference itself): the host keys
// Slipway checks function keys against are read from it.
var selfId = '/subscriptions/${subscription().subscriptionId}/resourceGroups/${resourceGroup().name}/providers/Microsoft.Web/sites/${name}'

resource plan 'Microsoft.Web/serverfarms@2024-04-01' = {
  name: 'plan-${name}'
  location: location
  tags: tags
  kind: 'functionapp'
  sku: {
    tier: 'FlexConsumption'
    name: 'FC1'
  }
  properties: {
    reserved: true
  }
}

resource app 'Microsoft.Web/sites@2024-04-01' = {
  name: name
  location: location
  tags: tags
  kind: 'functionapp,linux'
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: {
      '${identityId}': {}
      '${authIdentityId}': {}
    }
  }
  properties: {
    serverFarmId: plan.id
    httpsOnly: true
    functionAppConfig: {
      deployment: {
        storage: {
          type: 'blobContainer'
          value: '${storage.properties.primaryEndpoints.blob}${deploymentContainerName}'
          authentication: {
            type: 'UserAssignedIdentity'
            userAssignedIdentityResourceId: identityId
          }
        }
      }
      scaleAndConcurrency: {
        maximumInstanceCount: maximumInstanceCount
        instanceMemoryMB: instanceMemoryMB
      }
      runtime: {
        name: 'python'
        version: '3.11'
      }
    }
    siteConfig: {
      minTlsVersion: '1.2'
      appSettings: [
        { name: 'AzureWebJobsStorage__credential', value: 'managedidentity' }
        { name: 'AzureWebJobsStorage__clientId', value: identityClientId }
        { name: 'AzureWebJobsStorage__blobServiceUri', value: storage.properties.primaryEndpoints.blob }
        { name: 'AzureWebJobsStorage__queueServiceUri', value: storage.properties.primaryEndpoints.queue }
        { name: 'AzureWebJobsStorage__tableServiceUri', value: storage.properties.primaryEndpoints.table }
        { name: 'APPLICATIONINSIGHTS_CONNECTION_STRING', value: appInsightsConnectionString }
        { name: 'APPLICATIONINSIGHTS_AUTHENTICATION_STRING', value: 'ClientId=${identityClientId};Authorization=AAD' }
        { name: 'SLIPWAY_TABLE', value: 'Slipway' }
        { name: 'SLIPWAY_PACKAGES_CONTAINER', value: 'packages' }
        { name: 'SLIPWAY_PACKAGE_STORE_CONTAINER', value: 'slipway-packages' }
        { name: 'SLIPWAY_LOGS_CONTAINER', value: 'logs' }
        { name: 'SLIPWAY_SWEEP_SCHEDULE', value: '*/15 * * * * *' }
        { name: 'SLIPWAY_SCHEDULER_SCHEDULE', value: '0 * * * * *' }
        { name: 'SLIPWAY_SCHEDULE_GRACE_MINUTES', value: '60' }
        { name: 'SLIPWAY_GATE_MIN_INTERVAL_SECONDS', value: '60' }
        { name: 'SLIPWAY_CLOUD', value: environment().name }
        { name: 'SLIPWAY_MONITOR_ENDPOINT', value: '' }
        { name: 'SLIPWAY_LOGS_ENDPOINT', value: '' }
        { name: 'SLIPWAY_CLOCK_START', value: '' }
        { name: 'SLIPWAY_CLOCK_SPEED', value: '1' }
        { name: 'SLIPWAY_ARM_ENDPOINT', value: '' }
        { name: 'SLIPWAY_DEPLOYMENTS_ENDPOINT', value: '' }
        { name: 'SLIPWAY_CONTAINERAPPS_ENDPOINT', value: '' }
        { name: 'SLIPWAY_GITHUB_API_URL', value: 'https://api.github.com' }
        { name: 'SLIPWAY_AZURE_DEVOPS_URL', value: '' }
        { name: 'SLIPWAY_KEYVAULT_ENDPOINT', value: '' }
        { name: 'SLIPWAY_KEYVAULT_CA_FILE', value: '' }
        { name: 'SLIPWAY_HTTP_LOCAL_HOSTS', value: '' }
        { name: 'SLIPWAY_LOG_QUIET_SECONDS', value: '30' }
        { name: 'SLIPWAY_ARM_AUTH', value: 'managed-identity' }
        { name: 'SLIPWAY_MANAGED_IDENTITY_CLIENT_ID', value: identityClientId }
        { name: 'SLIPWAY_SLOT_URL_SCHEME', value: 'https' }
        { name: 'SLIPWAY_STEP_LEASE_SECONDS', value: '30' }
        { name: 'SLIPWAY_STEP_CONTINUE_SECONDS', value: '60' }
        { name: 'SLIPWAY_STEP_WAIT_SECONDS', value: '10' }
        { name: 'SLIPWAY_MAX_STEP_REDELIVERIES', value: '3' }
        { name: 'SLIPWAY_EMAIL_ENDPOINT', value: emailEndpoint }
        { name: 'SLIPWAY_EMAIL_SENDER', value: emailSender }
        { name: 'SLIPWAY_SMTP_HOST', value: '' }
        { name: 'SLIPWAY_SMTP_PORT', value: '25' }
        { name: 'SLIPWAY_PUBLIC_URL', value: '' }
        { name: 'SLIPWAY_LINK_HOURS', value: '72' }
        { name: 'SLIPWAY_MAIL_GROUPS', value: mailGroups }
        { name: 'SLIPWAY_AUTH_MODE', value: 'appservice' }
        { name: 'SLIPWAY_RETENTION_SCHEDULE', value: '0 */5 * * * *' }
        { name: 'SLIPWAY_RETENTION_BATCH', value: '10' }
        { name: 'SLIPWAY_METRICS_SCHEDULE', value: '30 * * * * *' }
        { name: 'SLIPWAY_METRICS_BATCH', value: '200' }
        // Build webhooks: empty turns a platform's hook off. Set each to a Key Vault reference
        // (@Microsoft.KeyVault(SecretUri=...)), which App Service resolves with the app's identity.
        { name: 'SLIPWAY_GITHUB_WEBHOOK_SECRET', value: '' }
        { name: 'SLIPWAY_GITHUB_TOKEN', value: '' }
        { name: 'SLIPWAY_ACR_WEBHOOK_TOKEN', value: '' }
        { name: 'SLIPWAY_AZURE_DEVOPS_HOOK_USER', value: '' }
        { name: 'SLIPWAY_AZURE_DEVOPS_HOOK_PASSWORD', value: '' }
        { name: 'SLIPWAY_AZURE_DEVOPS_HOOK_ORGANIZATION', value: '' }
        { name: 'AzureWebJobsDisableHomepage', value: 'true' }
        { name: 'OVERRIDE_USE_MI_FIC_ASSERTION_CLIENTID', value: authIdentityClientId }
        { name: 'WEBSITE_AUTH_AAD_ALLOWED_TENANTS', value: tenant().tenantId }
        { name: 'PYTHON_APPLICATIONINSIGHTS_ENABLE_TELEMETRY', value: 'true' }
        { name: 'SLIPWAY_DEV_IDENTITY', value: '' }
        { name: 'SLIPWAY_ADMINS', value: admins }
        { name: 'SLIPWAY_RELEASE_MANAGERS', value: releaseManagers }
        { name: 'SLIPWAY_READERS', value: '*' }
        { name: 'SLIPWAY_KEY_ROLES', value: 'releaseManager' }
        { name: 'SLIPWAY_GROUP_IDS', value: groupIds }
        { name: 'SLIPWAY_FUNCTION_APP_ID', value: selfId }
        { name: 'SLIPWAY_GATE_HEADER_SETTINGS', value: gateHeaderSettings }
      ]
    }
  }
}

output name string = app.name
output defaultHostName string = app.properties.defaultHostName
