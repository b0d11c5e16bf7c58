"""Services: the only code that changes the domain; the API, admin UI and worker call these."""
