"""Staff identity: passwords, second factor, sessions, CSRF and login rate limits."""
