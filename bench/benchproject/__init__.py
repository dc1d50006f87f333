"""Django project served by Daphne: the package's hub and a plain Channels consumer."""
