// Slipway in your subscription: one resource group with the function app (Flex Consumption),
// its storage, identity and monitoring; role assignments on the resource groups of the apps it
// deploys and the scopes its gates read. No secrets: every connection uses the managed identity.
targetScope = 'subscription'

@minLength(1)
@maxLength(48)
@description('Name of the azd environment; names and tags every resource.')
param environmentName string

@description('Azure region of every resource.')
param location string

@description('Object id of the person running azd, given read/write access to the storage for debugging. Optional.')
param principalId string = ''

@description('Resource groups of the App Service apps that stages deploy to: Slipway gets Website Contributor there.')
param targetResourceGroupNames array = []

@description('Resource groups that gates read (metrics, logs, alerts): Slipway gets Monitoring Reader and Log Analytics Reader there.')
param monitoredResourceGroupNames array = []

@description('Resource groups of the Key Vaults (Azure RBAC permission model) that hold secret variables and tokens of steps: Slipway gets Key Vault Secrets User there.')
param keyVaultResourceGroupNames array = []

@description('Create Azure Communication Services Email for approval mails.')
param enableEmail bool = false

@description('Create a sample target web app (Standard plan) with dev, test and preprod slots.')
param deploySampleApp bool = false

@minLength(36)
@maxLength(36)
@description('Application (client) id of Slipway\'s Microsoft Entra app registration, with the app roles Slipway.Admin, Slipway.ReleaseManager and Slipway.Reader (the preprovision hook creates it).')
param authClientId string

@description('Principal ids of the build identities that upload packages (Storage Blob Data Contributor on the packages container only).')
param uploaderPrincipalIds array = []

@description('Principal ids of the managed identities target apps read their package with when a stage deploys by runFromPackage (Storage Blob Data Reader on the slipway-packages container only).')
param packageReaderPrincipalIds array = []

@description('Group names mapped to Entra group object ids (name=objectId, comma-separated) for approvers and role grants named by group.')
param groupIds string = ''

var tags = { 'azd-env-name': environmentName }
var token = toLower(uniqueString(subscription().id, environmentName, location))

resource rg 'Microsoft.Resources/resourceGroups@2024-03-01' = {
  name: 'rg-${environmentName}'
  location: location
  tags: tags
}

module monitoring 'app/monitoring.bicep' = {
  name: 'monitoring'
  scope: rg
  params: {
    location: location
    tags: tags
    name: 'slipway-${token}'
  }
}

module storage 'app/storage.bicep' = {
  name: 'storage'
  scope: rg
  params: {
    location: location
    tags: tags
    name: 'stslipway${token}'
  }
}

module identity 'app/identity.bicep' = {
  name: 'identity'
  scope: rg
  params: {
    location: location
    tags: tags
    name: 'id-slipway-${token}'
  }
}

// App Service authentication signs in with this identity's federated credential instead of a
// secret; it is assigned to nothing else (learn.microsoft.com, configure-authentication-provider-aad).
module authIdentity 'app/identity.bicep' = {
  name: 'auth-identity'
  scope: rg
  params: {
    location: location
    tags: tags
    name: 'id-slipway-auth-${token}'
  }
}

module email 'app/email.bicep' = if (enableEmail) {
  name: 'email'
  scope: rg
  params: {
    tags: tags
    name: 'acs-slipway-${token}'
    principalId: identity.outputs.principalId
  }
}

module api 'app/function.bicep' = {
  name: 'api'
  scope: rg
  params: {
    location: location
    tags: union(tags, { 'azd-service-name': 'api' })
    name: 'func-slipway-${token}'
    storageAccountName: storage.outputs.name
    deploymentContainerName: storage.outputs.deploymentContainerName
    identityId: identity.outputs.id
    identityClientId: identity.outputs.clientId
    authIdentityId: authIdentity.outputs.id
    authIdentityClientId: authIdentity.outputs.clientId
    groupIds: groupIds
    appInsightsConnectionString: monitoring.outputs.appInsightsConnectionString
    emailEndpoint: enableEmail ? email.outputs.endpoint : ''
    emailSender: enableEmail ? email.outputs.sender : ''
  }
}

module rbac 'app/rbac.bicep' = {
  name: 'rbac'
  scope: rg
  params: {
    storageAccountName: storage.outputs.name
    appInsightsName: monitoring.outputs.appInsightsName
    principalId: identity.outputs.principalId
    userPrincipalId: principalId
  }
}

module auth 'app/auth.bicep' = {
  name: 'auth'
  scope: rg
  params: {
    appName: api.outputs.name
    clientId: authClientId
    tenantId: tenant().tenantId
  }
}

module selfKeys 'app/self-keys.bicep' = {
  name: 'self-keys'
  scope: rg
  params: {
    appName: api.outputs.name
    principalId: identity.outputs.principalId
  }
}

module uploaders 'app/container-access.bicep' = {
  name: 'uploaders'
  scope: rg
  params: {
    storageAccountName: storage.outputs.name
    containerName: 'packages'
    roleDefinitionId: 'ba92f5b4-2d11-453d-a403-e96b0029c9fe' // Storage Blob Data Contributor
    principalIds: uploaderPrincipalIds
  }
}

module packageReaders 'app/container-access.bicep' = {
  name: 'package-readers'
  scope: rg
  params: {
    storageAccountName: storage.outputs.name
    containerName: 'slipway-packages'
    roleDefinitionId: '2a2b9908-6ea1-4ae2-8e65-a410df84e7d1' // Storage Blob Data Reader
    principalIds: packageReaderPrincipalIds
  }
}

module targets 'app/target-rbac.bicep' = [for name in targetResourceGroupNames: {
  name: 'target-${name}'
  scope: resourceGroup(name)
  params: {
    principalId: identity.outputs.principalId
    roles: ['de139f84-1756-47ae-9be6-808fbbe84772'] // Website Contributor
  }
}]

module vaults 'app/target-rbac.bicep' = [for name in keyVaultResourceGroupNames: {
  name: 'vaults-${name}'
  scope: resourceGroup(name)
  params: {
    principalId: identity.outputs.principalId
    roles: ['4633458b-17de-408a-b874-0445c86b69e6'] // Key Vault Secrets User: read secret values, nothing else
  }
}]

module monitored 'app/target-rbac.bicep' = [for name in monitoredResourceGroupNames: {
  name: 'monitored-${name}'
  scope: resourceGroup(name)
  params: {
    principalId: identity.outputs.principalId
    roles: [
      '43d0d8ad-25c7-4714-9337-8ba259a9fe05' // Monitoring Reader
      '73c42c96-874c-492b-b04d-ab87d138a893' // Log Analytics Reader
    ]
  }
}]

module sample 'app/sample-webapp.bicep' = if (deploySampleApp) {
  name: 'sample'
  scope: rg
  params: {
    location: location
    tags: tags
    name: 'app-sample-${token}'
    principalId: identity.outputs.principalId
  }
}

output AZURE_LOCATION string = location
output AZURE_RESOURCE_GROUP string = rg.name
output SLIPWAY_API string = 'https://${api.outputs.defaultHostName}/api'
output SLIPWAY_URL string = 'https://${api.outputs.defaultHostName}'
output AUTH_IDENTITY_PRINCIPAL_ID string = authIdentity.outputs.principalId
output SLIPWAY_IDENTITY_CLIENT_ID string = identity.outputs.clientId
output SAMPLE_APP_NAME string = deploySampleApp ? sample.outputs.name : ''
