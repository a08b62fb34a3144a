# Run by perl -w (PL_LOG_COMPILER, AM_PL_LOG_FLAGS).
use strict;
exit 1 unless $^W;
exit 1 unless ($ENV{USERENV} || '') eq 'user';
print "ok from perl\n";
exit 0;
