#include <stdio.h>
int kpar_help_answer(void);
int main(void)
{
	printf("answer %d\n", kpar_help_answer());
	return kpar_help_answer() == 42 ? 0 : 1;
}
