"""From records to answers: tables (`results.load`), claims with verdicts, figures, the HTML report."""
