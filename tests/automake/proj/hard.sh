echo "a hard error"
exit 99
