"""Slipway seen through Azure DevOps' classic Release REST API (7.1): the shapes, ids and statuses its
clients expect (`azure-devops`'s ReleaseClient, PowerShell modules, curl scripts), mapped onto Slipway's
own services. Nothing here decides anything: every action goes through the service the /api uses."""
