"""Staff accounts run by admins: the list, each account's page and its actions, and the
one-time links through which staff choose their own password."""
