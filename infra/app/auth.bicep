// App Service authentication (Easy Auth) with Microsoft Entra ID in front of Slipway.
// - AllowAnonymous: the app itself decides. Its pages send an anonymous browser to sign in
//   (/.auth/login/aad); its API answers 401 without an identity, so pipelines can call it with
//   an Entra access token (validated here: issuer, audience, lifetime) or a function key.
// - No client secret: a user-assigned identity of its own is the app registration's federated
//   credential (learn.microsoft.com, configure-authentication-provider-aad, "Use a managed
//   identity instead of a secret"); its client id is in OVERRIDE_USE_MI_FIC_ASSERTION_CLIENTID.
// - The app registration (infra/hooks/entra-app.sh creates it) defines the app roles
//   Slipway.Admin, Slipway.ReleaseManager and Slipway.Reader and requires assignment.
param appName string

@description('Application (client) id of Slipway\'s app registration.')
param clientId string

@description('Tenant of the app registration.')
param tenantId string

resource app 'Microsoft.Web/sites@2024-04-01' existing = {
  name: appName
}

resource auth 'Microsoft.Web/sites/config@2024-04-01' = {
  parent: app
  name: 'authsettingsV2'
  properties: {
    platform: {
      enabled: true
    }
    globalValidation: {
      requireAuthentication: false
      unauthenticatedClientAction: 'AllowAnonymous'
    }
    httpSettings: {
      requireHttps: true
      routes: { apiPrefix: '/.auth' }
    }
    identityProviders: {
      azureActiveDirectory: {
        enabled: true
        registration: {
          clientId: clientId
          clientSecretSettingName: 'OVERRIDE_USE_MI_FIC_ASSERTION_CLIENTID'
          openIdIssuer: '${environment().authentication.loginEndpoint}${tenantId}/v2.0'
        }
        validation: {
          allowedAudiences: [
            'api://${clientId}'
            clientId
          ]
        }
      }
    }
    login: {
      tokenStore: { enabled: true }
    }
  }
}
