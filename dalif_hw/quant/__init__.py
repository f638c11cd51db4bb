"""Float to integer: packing trained layers (``packing``) and the packed network with its
``network.yaml`` and schema (``packed``)."""
