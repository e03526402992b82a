// Optional: a target app to try Slipway on, with dev, test and preprod slots (slots need the
// Standard plan or above). It runs the sample app in examples/webapp; Slipway gets Website
// Contributor on it.
param name string
param location string
param tags object
param principalId string

resource plan 'Microsoft.Web/serverfarms@2024-04-01' = {
  name: 'plan-${name}'
  location: location
  tags: tags
  kind: 'linux'
  sku: { name: 'S1', tier: 'Standard' }
  properties: { reserved: true }
}

var siteConfig = {
  linuxFxVersion: 'PYTHON|3.11'
  appCommandLine: 'python serve.py'
  minTlsVersion: '1.2'
  ftpsState: 'Disabled'
}

resource app 'Microsoft.Web/sites@2024-04-01' = {
  name: name
  location: location
  tags: tags
  kind: 'app,linux'
  properties: {
    serverFarmId: plan.id
    httpsOnly: true
    siteConfig: siteConfig
  }
}

resource slots 'Microsoft.Web/sites/slots@2024-04-01' = [for slot in ['dev', 'test', 'preprod', 'staging']: {
  parent: app
  name: slot
  location: location
  tags: tags
  kind: 'app,linux'
  properties: {
    serverFarmId: plan.id
    httpsOnly: true
    siteConfig: siteConfig
  }
}]

resource deployer 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(app.id, principalId, 'de139f84-1756-47ae-9be6-808fbbe84772')
  scope: app
  properties: {
    principalId: principalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', 'de139f84-1756-47ae-9be6-808fbbe84772') // Website Contributor
  }
}

output name string = app.name
