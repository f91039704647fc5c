package rewrite

// Sort orders the nodes topologically; a pipeline ends with it before a graph is written.
var Sort = Register(&Pass{
	Name: "sort",
	Doc:  "order the nodes topologically, keeping the existing order where possible",
	Run:  func(c *Context) (bool, error) { return true, c.Graph().Sort() },
})
