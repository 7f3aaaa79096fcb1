"""The local runner: the same step list as the Argo WorkflowTemplate, run as subprocesses on one machine."""
