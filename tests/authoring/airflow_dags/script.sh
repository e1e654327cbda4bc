echo "script for {{ ds }} with N=$N"
