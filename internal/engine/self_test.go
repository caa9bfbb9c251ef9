package engine

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

const (
	idA = "3f1c2a9d8e7b6a5f4e3d2c1b0a9f8e7d6c5b4a3f2e1d0c9b8a7f6e5d4c3b2a1f"
	idB = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
)

func TestContainerIDs(t *testing.T) {
	cases := []struct {
		name, cgroup, mountinfo string
		want                    []string
	}{
		{name: "host, cgroup v1", cgroup: "12:pids:/\n11:freezer:/\n1:name=systemd:/init.scope\n"},
		{name: "host, cgroup v2", cgroup: "0::/user.slice/user-0.slice/session-3.scope\n"},
		{
			name:   "cgroup v1, cgroupfs driver",
			cgroup: "12:pids:/docker/" + idA + "\n6:freezer:/docker/" + idA + "\n1:name=systemd:/docker/" + idA + "\n",
			want:   []string{idA},
		},
		{
			name:   "cgroup v1, systemd driver",
			cgroup: "4:memory:/system.slice/docker-" + idA + ".scope\n",
			want:   []string{idA},
		},
		{
			name:   "cgroup v2, host namespace",
			cgroup: "0::/system.slice/docker-" + idA + ".scope\n",
			want:   []string{idA},
		},
		{
			name:   "docker in docker: the innermost",
			cgroup: "7:cpu:/docker/" + idB + "/docker/" + idA + "\n",
			want:   []string{idA},
		},
		{
			name:   "cgroup v2, private namespace: from mountinfo",
			cgroup: "0::/\n",
			mountinfo: "600 500 0:50 / / rw,relatime - overlay overlay rw,lowerdir=/var/lib/docker/overlay2/l/X,upperdir=/var/lib/docker/overlay2/" + idB + "/diff\n" +
				"610 600 8:1 /var/lib/docker/containers/" + idA + "/resolv.conf /etc/resolv.conf rw,relatime - ext4 /dev/sda1 rw\n" +
				"611 600 8:1 /var/lib/docker/containers/" + idA + "/hostname /etc/hostname rw,relatime - ext4 /dev/sda1 rw\n" +
				"612 600 8:1 /var/lib/docker/containers/" + idA + "/hosts /etc/hosts rw,relatime - ext4 /dev/sda1 rw\n",
			want: []string{idA},
		},
		{
			// The data root mounted into the container shows every other
			// container's files as mount points: only /etc's count.
			name:   "data root mounted: other containers ignored",
			cgroup: "0::/\n",
			mountinfo: "620 600 8:1 /lbt/root /lbt/root rw - ext4 /dev/sda1 rw\n" +
				"621 620 0:60 / /lbt/root/containers/" + idB + "/mounts/shm rw - tmpfs shm rw\n" +
				"622 620 8:1 /lbt/root/containers/" + idB + "/hostname /lbt/root/containers/" + idB + "/hostname rw - ext4 /dev/sda1 rw\n" +
				"611 600 8:1 /tmp/lbt/root/containers/" + idA + "/hostname /etc/hostname rw - ext4 /dev/sda1 rw\n",
			want: []string{idA},
		},
		{
			name:      "cgroup first, then mountinfo, no repeats",
			cgroup:    "0::/system.slice/docker-" + idA + ".scope\n",
			mountinfo: "611 600 8:1 /d/containers/" + idB + "/hostname /etc/hostname rw - ext4 /dev/sda1 rw\n611 600 8:1 /d/containers/" + idA + "/hosts /etc/hosts rw - ext4 /dev/sda1 rw\n",
			want:      []string{idA, idB},
		},
		{name: "short or odd IDs are not IDs", cgroup: "3:cpu:/docker/" + idA[:12] + "\n2:blkio:/docker/" + strings.ToUpper(idA) + "\n"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, ContainerIDs(tc.cgroup, tc.mountinfo)); diff != "" {
				t.Fatalf("ContainerIDs (-want +got):\n%s", diff)
			}
		})
	}
}

func TestMountPointOf(t *testing.T) {
	info := "600 500 0:50 / / rw - overlay overlay rw\n" +
		"601 600 8:1 /var/lib/docker /var/lib/docker rw - ext4 /dev/sda1 rw\n" +
		"602 601 0:60 / /var/lib/docker/overlay2/abc/merged rw - overlay overlay rw\n" +
		"603 600 8:1 /srv/my\\040app /srv/my\\040app rw - ext4 /dev/sda1 rw\n" +
		"604 600 8:1 /var/lib/lifeboat /var/lib/lifeboat rw - ext4 /dev/sda1 rw\n"
	cases := map[string]string{
		"/var/lib/docker/volumes/v/_data":         "/var/lib/docker",
		"/var/lib/docker":                         "/var/lib/docker",
		"/var/lib/docker/overlay2/abc/merged/etc": "/var/lib/docker/overlay2/abc/merged",
		"/var/lib/dockerx/volumes":                "/",
		"/srv/my app/data/":                       "/srv/my app",
		"/srv/my":                                 "/",
		"/etc":                                    "/",
		"/var/lib/lifeboat/../docker/volumes/v":   "/var/lib/docker",
	}
	for path, want := range cases {
		if got := MountPointOf(info, path); got != want {
			t.Errorf("MountPointOf(%q) = %q, want %q", path, got, want)
		}
	}
}
