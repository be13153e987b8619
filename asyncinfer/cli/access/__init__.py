"""The CLI's data access: the only modules of the CLI that call boto3."""
