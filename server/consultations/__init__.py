"""The consultation core: what bookings, records, signalling and the call pages all mean by a
consultation (statuses, the store, credentials, the care rule, languages), declared once."""
