int kpar_help_answer(void) { return 42; }
