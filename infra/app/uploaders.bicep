// Builds upload their packages to the `packages` container only: Slipway copies each registered
// package into its own container (slipway-packages), which builds cannot write.
param storageAccountName string
param principalIds array

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: storageAccountName
}

resource blobs 'Microsoft.Storage/storageAccounts/blobServices@2023-05-01' existing = {
  parent: storage
  name: 'default'
}

resource uploads 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' existing = {
  parent: blobs
  name: 'packages'
}

var blobContributor = 'ba92f5b4-2d11-453d-a403-e96b0029c9fe' // Storage Blob Data Contributor

resource assignments 'Microsoft.Authorization/roleAssignments@2022-04-01' = [for id in principalIds: {
  name: guid(uploads.id, id, blobContributor)
  scope: uploads
  properties: {
    principalId: id
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', blobContributor)
  }
}]
