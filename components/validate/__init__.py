"""validate: the Great Expectations data-quality gate that produces the canonical dataset artifact."""
