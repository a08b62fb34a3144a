echo "expected to fail, and fails"
exit 1
