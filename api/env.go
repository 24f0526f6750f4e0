package api

// Env is the answer of every env route, and the body of
// PUT /sandbox/{id}/env: the whole set of environment variables.
type Env struct {
	EnvironmentVariables map[string]string `json:"environment_variables"`
}

// EnvPatch is the body of PATCH /sandbox/{id}/env: Set adds or overwrites,
// Unset removes (a missing name is not an error).
type EnvPatch struct {
	Set   map[string]string `json:"set,omitempty"`
	Unset []string          `json:"unset,omitempty"`
}
