// Application Insights on Log Analytics, a workbook over Slipway's telemetry events, and an alert
// when a production deployment fails. Slipway sends one custom event `SlipwayTransition` per
// state change (see shared/telemetry.py for its fields).
param name string
param location string
param tags object

resource workspace 'Microsoft.OperationalInsights/workspaces@2023-09-01' = {
  name: 'log-${name}'
  location: location
  tags: tags
  properties: {
    sku: { name: 'PerGB2018' }
    retentionInDays: 30
  }
}

resource appInsights 'Microsoft.Insights/components@2020-02-02' = {
  name: 'appi-${name}'
  location: location
  tags: tags
  kind: 'web'
  properties: {
    Application_Type: 'web'
    WorkspaceResourceId: workspace.id
    DisableLocalAuth: true
  }
}

var events = 'customEvents | where name == "SlipwayTransition" | extend event = tostring(customDimensions.event), stage = tostring(customDimensions.stage), release = tostring(customDimensions.release), status = tostring(customDimensions.status), production = tobool(customDimensions.production), queueWaitMs = todouble(customDimensions.queueWaitMs), approvalWaitMs = todouble(customDimensions.approvalWaitMs), gateWaitMs = todouble(customDimensions.gateWaitMs), executionMs = todouble(customDimensions.executionMs)'

var workbookContent = {
  version: 'Notebook/1.0'
  items: [
    {
      type: 1
      content: { json: '## Slipway releases\nOne custom event per state change: releases by status, stage durations split into waits and execution, approval waits, gate samples.' }
    }
    {
      type: 3
      content: {
        version: 'KqlItem/1.0'
        title: 'Deployments by status'
        query: '${events} | where event startswith "deployment" and event != "deploymentStarted" | summarize count() by status, bin(timestamp, 1d) | render columnchart'
        queryType: 0
        resourceType: 'microsoft.insights/components'
      }
    }
    {
      type: 3
      content: {
        version: 'KqlItem/1.0'
        title: 'Stage duration (minutes): queue wait, approval wait, gate wait, execution'
        query: '${events} | where event in ("deploymentSucceeded", "deploymentFailed", "deploymentPartiallySucceeded") | summarize queue = avg(queueWaitMs) / 60000, approval = avg(approvalWaitMs) / 60000, gates = avg(gateWaitMs) / 60000, execution = avg(executionMs) / 60000 by stage | render barchart kind=stacked'
        queryType: 0
        resourceType: 'microsoft.insights/components'
      }
    }
    {
      type: 3
      content: {
        version: 'KqlItem/1.0'
        title: 'Approval wait times (minutes)'
        query: '${events} | where approvalWaitMs > 0 | summarize p50 = percentile(approvalWaitMs, 50) / 60000, p95 = percentile(approvalWaitMs, 95) / 60000 by stage'
        queryType: 0
        resourceType: 'microsoft.insights/components'
      }
    }
    {
      type: 3
      content: {
        version: 'KqlItem/1.0'
        title: 'Gate samples'
        query: '${events} | where event == "gateSampled" | summarize passed = countif(status == "passed"), failed = countif(status == "failed"), errored = countif(status == "errored") by stage, bin(timestamp, 1h) | render timechart'
        queryType: 0
        resourceType: 'microsoft.insights/components'
      }
    }
    {
      type: 3
      content: {
        version: 'KqlItem/1.0'
        title: 'Latest transitions'
        query: '${events} | project timestamp, release, stage, event, status, production | order by timestamp desc | take 100'
        queryType: 0
        resourceType: 'microsoft.insights/components'
      }
    }
  ]
}

resource workbook 'Microsoft.Insights/workbooks@2023-06-01' = {
  name: guid(resourceGroup().id, name, 'slipway-workbook')
  location: location
  tags: tags
  kind: 'shared'
  properties: {
    displayName: 'Slipway releases'
    category: 'workbook'
    sourceId: appInsights.id
    serializedData: string(workbookContent)
  }
}

resource productionFailed 'Microsoft.Insights/scheduledQueryRules@2023-03-15-preview' = {
  name: 'alert-${name}-production-failed'
  location: location
  tags: tags
  properties: {
    displayName: 'Slipway: a production deployment failed'
    description: 'A deployment to a stage that targets a production slot ended as failed.'
    severity: 1
    enabled: true
    scopes: [appInsights.id]
    evaluationFrequency: 'PT5M'
    windowSize: 'PT5M'
    criteria: {
      allOf: [
        {
          query: '${events} | where event == "deploymentFailed" and production == true'
          timeAggregation: 'Count'
          operator: 'GreaterThan'
          threshold: 0
          failingPeriods: { numberOfEvaluationPeriods: 1, minFailingPeriodsToAlert: 1 }
        }
      ]
    }
  }
}

output appInsightsName string = appInsights.name
output appInsightsConnectionString string = appInsights.properties.ConnectionString
