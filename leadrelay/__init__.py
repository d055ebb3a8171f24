"""leadrelay: broker-portal leads into Nexudus CRM opportunities, exactly once."""

__version__ = "0.1.0"
