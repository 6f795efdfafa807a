"""Centre kiosks: enrolling a browser as a named kiosk of a centre, and the kiosk's own pages
(language, code or QR, date of birth) that forget each patient before the next."""
