// Slipway's state: tables (definitions, releases, index), queues (deployment steps), blobs
// (packages builds upload, Slipway's own copies of registered packages, step logs, the function
// app's own deployment package). Shared keys are off.
param name string
param location string
param tags object

var deploymentContainerName = 'app-package'

resource account 'Microsoft.Storage/storageAccounts@2023-05-01' = {
  name: take(name, 24)
  location: location
  tags: tags
  kind: 'StorageV2'
  sku: { name: 'Standard_LRS' }
  properties: {
    allowSharedKeyAccess: false
    allowBlobPublicAccess: false
    minimumTlsVersion: 'TLS1_2'
    supportsHttpsTrafficOnly: true
    publicNetworkAccess: 'Enabled'
  }
}

resource blobs 'Microsoft.Storage/storageAccounts/blobServices@2023-05-01' = {
  parent: account
  name: 'default'
}

resource containers 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = [for container in [deploymentContainerName, 'packages', 'slipway-packages', 'logs']: {
  parent: blobs
  name: container
}]

resource queueService 'Microsoft.Storage/storageAccounts/queueServices@2023-05-01' = {
  parent: account
  name: 'default'
}

resource queues 'Microsoft.Storage/storageAccounts/queueServices/queues@2023-05-01' = [for queue in ['slipway-steps', 'slipway-steps-poison', 'slipway-events', 'slipway-events-poison', 'slipway-gates', 'slipway-gates-poison', 'slipway-mail', 'slipway-mail-poison']: {
  parent: queueService
  name: queue
}]

resource tableService 'Microsoft.Storage/storageAccounts/tableServices@2023-05-01' = {
  parent: account
  name: 'default'
}

resource tables 'Microsoft.Storage/storageAccounts/tableServices/tables@2023-05-01' = [for table in ['Slipway', 'SlipwayIndex']: {
  parent: tableService
  name: table
}]

output name string = account.name
output deploymentContainerName string = deploymentContainerName
