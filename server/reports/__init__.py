"""The activity report for the funders: bookings, attendance, patients reached, waiting and
call facts by centre, service, mode and month, with small counts suppressed (docs/reports.md)."""
