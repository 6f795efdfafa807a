"""Centre bookings: services, resources, availability and slots, bookings, consultations,
patient invitations and the JSON API that drives them."""
