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

@description('Create Azure Communication Services Email for approval mails.')
param enableEmail bool = false

@description('Create a sample target web app (Standard plan) with dev, test and preprod slots.')
param deploySampleApp bool = false

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

module targets 'app/target-rbac.bicep' = [for name in targetResourceGroupNames: {
  name: 'target-${name}'
  scope: resourceGroup(name)
  params: {
    principalId: identity.outputs.principalId
    roles: ['de139f84-1756-47ae-9be6-808fbbe84772'] // Website Contributor
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
output SLIPWAY_IDENTITY_CLIENT_ID string = identity.outputs.clientId
output SAMPLE_APP_NAME string = deploySampleApp ? sample.outputs.name : ''
