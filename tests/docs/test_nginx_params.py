"""What the nginx blocks in the docs rely on: a parameter sent twice keeps its last value.

nginx sends both the stock ``SCRIPT_NAME $fastcgi_script_name`` and the
block's ``fastcgi_param SCRIPT_NAME ""`` that follows the include.
"""

from peak_lite.running.gateways.fcgi_protocol import decodeParams, encodeNameValues


def test_a_parameter_sent_twice_keeps_the_value_sent_last():
    data = encodeNameValues([('SCRIPT_NAME', '/visits'), ('REQUEST_URI', '/visits'),
                             ('SCRIPT_NAME', ''), ('PATH_INFO', '/visits')])
    env = decodeParams(data)
    assert (env['SCRIPT_NAME'], env['PATH_INFO']) == ('', '/visits')
