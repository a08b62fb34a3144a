echo "expected to fail, but passes"
exit 0
