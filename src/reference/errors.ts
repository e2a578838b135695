// The one error the reference model throws: a control call the core would
// refuse (unknown group or target, duplicate, table full, bad argument).

export class ModelError extends Error {}
