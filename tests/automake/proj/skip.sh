echo "SKIP: not on this machine"
exit 77
