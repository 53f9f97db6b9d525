"""Users, roles and sign-in: staff scoped to sites, owners bound to their units by SMS code."""
