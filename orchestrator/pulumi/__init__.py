"""The Pulumi engine: deploys requests of `kind = "pulumi"` environments through the Automation
API (`engine`), or runs their programs offline under Pulumi's mock runtime (`offline`)."""
