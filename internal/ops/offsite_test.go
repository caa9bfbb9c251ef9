package ops

import "testing"

func TestVerifyOffsiteRequestValidate(t *testing.T) {
	for _, tc := range []struct {
		req  VerifyOffsiteRequest
		want string // "" valid
	}{
		{VerifyOffsiteRequest{To: "s3://b/host1"}, ""},
		{VerifyOffsiteRequest{To: "s3://b/host1", LockMode: "Compliance"}, ""},
		{VerifyOffsiteRequest{To: "s3://b/host1", LockMode: "governance"}, ""},
		{VerifyOffsiteRequest{}, "--to s3://"},
		{VerifyOffsiteRequest{To: "/mnt/copy"}, "--to s3://"},
		{VerifyOffsiteRequest{To: "s3://b/host1", LockMode: "strict"}, "governance or compliance"},
	} {
		err := tc.req.Validate()
		if tc.want == "" {
			if err != nil {
				t.Errorf("%+v: %v", tc.req, err)
			}
			continue
		}
		wantInvalid(t, err, tc.want)
		_, err = VerifyOffsite(t.Context(), untouchable(t), tc.req, Observer{})
		wantInvalid(t, err, tc.want)
	}
}
