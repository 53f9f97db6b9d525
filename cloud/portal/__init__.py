"""The owner portal: an owner's units, usage, bills with every line, online payment and payment history."""
