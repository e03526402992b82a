// Roles for Slipway's identity on a resource group outside its own: where its target apps live
// (Website Contributor), what its gates read (Monitoring Reader, Log Analytics Reader), or the Key Vaults
// its secret variables live in (Key Vault Secrets User).
param principalId string
param roles array

resource assignments 'Microsoft.Authorization/roleAssignments@2022-04-01' = [for role in roles: {
  name: guid(resourceGroup().id, principalId, role)
  properties: {
    principalId: principalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', role)
  }
}]
