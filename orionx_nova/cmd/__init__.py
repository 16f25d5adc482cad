"""Console entry points. Each module only parses arguments and calls into the
package that does the work."""
