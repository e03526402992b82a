// One role on one blob container of Slipway's storage, for the given principals. Builds get
// Storage Blob Data Contributor on `packages` (where they upload; Slipway copies each registered
// package into `slipway-packages`, which builds cannot write); target apps that run from a package
// get Storage Blob Data Reader on `slipway-packages`, read with their managed identity (no SAS).
param storageAccountName string
param containerName string
param roleDefinitionId string
param principalIds array

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: storageAccountName
}

resource blobs 'Microsoft.Storage/storageAccounts/blobServices@2023-05-01' existing = {
  parent: storage
  name: 'default'
}

resource container 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' existing = {
  parent: blobs
  name: containerName
}

resource assignments 'Microsoft.Authorization/roleAssignments@2022-04-01' = [for id in principalIds: {
  name: guid(container.id, id, roleDefinitionId)
  scope: container
  properties: {
    principalId: id
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roleDefinitionId)
  }
}]
