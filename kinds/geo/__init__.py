"""Mobile geolocation: phones posting XY positions, enriched with the device's driver and city."""
