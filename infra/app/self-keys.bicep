// Slipway checks function keys itself (its routes are anonymous to the Functions host so that an
// Entra token alone is enough): its identity may read this app's host keys, and nothing more.
param appName string
param principalId string

resource app 'Microsoft.Web/sites@2024-04-01' existing = {
  name: appName
}

resource keyReader 'Microsoft.Authorization/roleDefinitions@2022-04-01' = {
  name: guid(resourceGroup().id, 'slipway-host-key-reader')
  properties: {
    roleName: 'Slipway host key reader (${resourceGroup().name})'
    description: 'Read a function app and list its host keys.'
    type: 'CustomRole'
    permissions: [
      {
        actions: [
          'Microsoft.Web/sites/read'
          'Microsoft.Web/sites/host/listkeys/action'
        ]
      }
    ]
    assignableScopes: [resourceGroup().id]
  }
}

resource assignment 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(app.id, principalId, keyReader.id)
  scope: app
  properties: {
    principalId: principalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: keyReader.id
  }
}
