"""Reading the policy graph: lint findings and service graph drawings."""
