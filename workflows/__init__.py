"""Pipeline definitions: the one step list that both the local runner and the Argo WorkflowTemplates use."""
