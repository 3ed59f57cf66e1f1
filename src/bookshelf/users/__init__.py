"""Account management: one's own profile, and admin control of every account."""
