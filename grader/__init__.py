"""grader: the ChainAcademy autograder."""
