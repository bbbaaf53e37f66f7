"""Deploy tools: running or provisioning a rendered mesh on a target."""
