"""What the operator runs from the command line against provisioning (``khaibao accounts``)."""
