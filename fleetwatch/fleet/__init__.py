"""Sites and devices: the fleet inventory with cohort attributes."""
