#!/usr/bin/perl
# mkmmdb.pl: writes the small GeoIP City database the tests use
# (DESIGN.md §7: tests build their own MMDB with Debian's
# libmaxmind-db-writer-perl).
#
#   perl tests/tools/mkmmdb.pl OUT.mmdb
#
# Same layout as GeoLite2-City / DB-IP City Lite: an IPv6 tree with IPv4 in
# ::/96 and aliased from ::ffff:0:0/96, records carrying country.iso_code,
# subdivisions[0].names.en and city.names.en. The output is byte-for-byte
# the same on every run (fixed build epoch; the writer sorts map keys).
#
# Networks (all from reserved ranges, so nothing real is claimed;
# remove_reserved_networks is off for that reason):
#   203.0.113.0/24  DE, Berlin, Berlin     (the browser integration test uses it)
#   198.51.100.0/24 US, California, San Francisco
#   2001:db8::/32   JP, Tokyo, Tokyo
#   192.0.2.0/24    FR only (no subdivision, no city: like a Country database)
#   100.64.0.0/24   ZZ, with region and city longer than 80 bytes of
#                   multi-byte UTF-8 (truncation at a character boundary)
use strict;
use warnings;
use utf8;

use MaxMind::DB::Writer::Tree;

@ARGV == 1 or die "usage: perl tests/tools/mkmmdb.pl OUT.mmdb\n";
my $out = $ARGV[0];

my %types = (
    city          => 'map',
    country       => 'map',
    subdivisions  => [ 'array', 'map' ],
    names         => 'map',
    en            => 'utf8_string',
    iso_code      => 'utf8_string',
);

my $tree = MaxMind::DB::Writer::Tree->new(
    ip_version               => 6,
    record_size              => 24,
    database_type            => 'herenow-Test-City',
    languages                => ['en'],
    description              => { en => 'herenow test database (documentation ranges only)' },
    map_key_type_callback    => sub { $types{ $_[0] } // die "no type for key '$_[0]'\n" },
    alias_ipv6_to_ipv4       => 1,
    remove_reserved_networks => 0,
);
# The writer's own tests do this to compare two outputs byte for byte.
$tree->_set_build_epoch(1700000000);

my %country_name = ( DE => 'Germany', US => 'United States', JP => 'Japan', FR => 'France', ZZ => 'Testland' );

sub rec {
    my ( $cc, $subdivision, $region, $city ) = @_;
    my %r = ( country => { iso_code => $cc, names => { en => $country_name{$cc} } } );
    $r{subdivisions} = [ { iso_code => $subdivision, names => { en => $region } } ] if defined $region;
    $r{city} = { names => { en => $city } } if defined $city;
    return \%r;
}

$tree->insert_network( '203.0.113.0/24',  rec( 'DE', 'BE', 'Berlin',     'Berlin' ) );
$tree->insert_network( '198.51.100.0/24', rec( 'US', 'CA', 'California', 'San Francisco' ) );
$tree->insert_network( '2001:db8::/32',   rec( 'JP', '13', 'Tokyo',      'Tokyo' ) );
$tree->insert_network( '192.0.2.0/24',    rec('FR') );
# 120 and 200 bytes of 3- and 2-byte characters: longer than hn_geo_info's 80.
$tree->insert_network( '100.64.0.0/24',   rec( 'ZZ', 'XX', '€' x 40, 'é' x 100 ) );

open my $fh, '>:raw', $out or die "cannot write $out: $!\n";
$tree->write_tree($fh);
close $fh or die "cannot write $out: $!\n";
