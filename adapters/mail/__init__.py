"""Reading notification e-mails: MIME and charsets, HTML to text, forwards, label/value pairs."""
